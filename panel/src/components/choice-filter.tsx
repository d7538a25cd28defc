/** A filter as a labelled select: "any" (empty) or one of its choices, each with what it shows. */
export function ChoiceFilter({ label, value, choices, onChange }: { label: string; value: string; choices: Array<[value: string, shown: string]>; onChange: (value: string) => void }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        <option value="">any</option>
        {choices.map(([v, shown]) => (
          <option key={v} value={v}>
            {shown}
          </option>
        ))}
      </select>
    </label>
  );
}
