/** A table's header row: one column header per name (an empty name is a column without a visible title). */
export function ColumnHeads({ names }: { names: string[] }) {
  return (
    <thead>
      <tr>
        {names.map((n, i) => (
          <th key={i} scope="col">
            {n || <span class="visually-hidden">Select</span>}
          </th>
        ))}
      </tr>
    </thead>
  );
}
