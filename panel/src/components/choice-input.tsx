import { FieldErrors } from './field-errors';

/**
 * A field whose value comes from the target's list when the target has one (a select), and is typed in when it takes
 * any name (an input). `empty` names what leaving it empty means, when it may be left empty.
 */
export function ChoiceInput(props: {
  label: string;
  name: string;
  value: string;
  options?: Array<{ value: string; shown?: string }>;
  empty?: string;
  required?: boolean;
  placeholder?: string;
  reasons?: string[];
  onChange: (value: string) => void;
}) {
  const invalid = !!props.reasons?.length;
  const onChange = (e: Event) => props.onChange((e.target as HTMLInputElement | HTMLSelectElement).value);
  return (
    <label>
      {props.label}
      {props.options ? (
        <select name={props.name} value={props.value} required={props.required} onChange={onChange} aria-invalid={invalid}>
          {(props.empty !== undefined || !props.value) && <option value="">{props.empty ?? 'choose…'}</option>}
          {props.value && !props.options.some((o) => o.value === props.value) && <option value={props.value}>{props.value} (not offered)</option>}
          {props.options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.shown ?? o.value}
            </option>
          ))}
        </select>
      ) : (
        <input name={props.name} value={props.value} required={props.required} placeholder={props.placeholder ?? props.empty} onInput={onChange} aria-invalid={invalid} />
      )}
      <FieldErrors reasons={props.reasons} />
    </label>
  );
}
