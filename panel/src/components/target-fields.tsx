import type { AssessmentTarget } from '../assessment-target';
import type { TargetChoices, TargetList } from '../target-choices';
import { ChoiceInput } from './choice-input';
import { ProblemNotice } from './problem-notice';

/** The target VMs are assessed and migrated for: target (of the configured ones), project (of the caller's), volume type (of the target's). */
export function TargetFields(props: {
  value: AssessmentTarget;
  onChange: (t: AssessmentTarget) => void;
  projects: string[] | '*';
  targets?: TargetList;
  choices?: TargetChoices;
  choicesError?: unknown;
  errors?: (field: string) => string[];
}) {
  const { value, onChange, projects, targets, choices, errors } = props;
  const set = (k: keyof AssessmentTarget) => (v: string) => onChange({ ...value, [k]: v });
  return (
    <fieldset class="fields">
      <legend>Target</legend>
      <ChoiceInput
        label="Target"
        name="target.name"
        value={value.name}
        options={targets?.targets.map((t) => ({ value: t.name, shown: `${t.name} (${t.kind})` }))}
        empty={targets ? `the default (${targets.defaultTarget})` : "the service's default"}
        reasons={errors?.('target.name')}
        onChange={set('name')}
      />
      {projects === '*' ? (
        <ChoiceInput label="Project" name="target.project" value={value.project} required reasons={errors?.('target.project')} onChange={set('project')} />
      ) : (
        <ChoiceInput label="Project" name="target.project" value={value.project} required options={projects.map((p) => ({ value: p }))} reasons={errors?.('target.project')} onChange={set('project')} />
      )}
      <ChoiceInput
        label="Volume type"
        name="target.volumeType"
        value={value.volumeType}
        required
        placeholder="e.g. standard"
        options={choices?.volumeTypes?.map((t) => ({ value: t.name, shown: t.description ? `${t.name} — ${String(t.description)}` : t.name }))}
        reasons={errors?.('target.volumeType')}
        onChange={set('volumeType')}
      />
      {props.choicesError !== undefined && <ProblemNotice error={props.choicesError} what="Reading the target's choices" />}
    </fieldset>
  );
}
