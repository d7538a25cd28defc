/** The API's reasons for one field, shown at the field. */
export function FieldErrors({ reasons }: { reasons?: string[] }) {
  if (!reasons?.length) return null;
  return (
    <span class="field-error" role="alert">
      {reasons.join('; ')}
    </span>
  );
}
