import type { AssessmentTarget } from '../assessment-target';
import { FieldErrors } from './field-errors';

/** The target VMs are assessed and migrated for: target, project (of the caller's), volume type. */
export function TargetFields({ value, onChange, projects, errors }: { value: AssessmentTarget; onChange: (t: AssessmentTarget) => void; projects: string[] | '*'; errors?: (field: string) => string[] }) {
  const set = (k: keyof AssessmentTarget) => (e: Event) => onChange({ ...value, [k]: (e.target as HTMLInputElement).value });
  return (
    <fieldset class="fields">
      <legend>Target</legend>
      <label>
        Target <span class="muted">(empty: the service's default)</span>
        <input name="target.name" value={value.name} onInput={set('name')} placeholder="default" aria-invalid={!!errors?.('target.name').length} />
        <FieldErrors reasons={errors?.('target.name')} />
      </label>
      <label>
        Project
        {projects === '*' ? (
          <input name="target.project" required value={value.project} onInput={set('project')} aria-invalid={!!errors?.('target.project').length} />
        ) : (
          <select name="target.project" required value={value.project} onChange={set('project')} aria-invalid={!!errors?.('target.project').length}>
            {projects.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        )}
        <FieldErrors reasons={errors?.('target.project')} />
      </label>
      <label>
        Volume type
        <input name="target.volumeType" required value={value.volumeType} onInput={set('volumeType')} placeholder="e.g. standard" aria-invalid={!!errors?.('target.volumeType').length} />
        <FieldErrors reasons={errors?.('target.volumeType')} />
      </label>
    </fieldset>
  );
}
