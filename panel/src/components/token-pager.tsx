/**
 * Paging as the API does it: each answer may carry a `nextPageToken`. The tokens of the pages visited are a stack,
 * so Previous goes back without the API having to page backwards.
 */
export function TokenPager({ label, pages, next, onChange }: { label: string; pages: string[]; next?: string; onChange: (pages: string[]) => void }) {
  return (
    <nav class="pager" aria-label={label}>
      <button type="button" disabled={!pages.length} onClick={() => onChange(pages.slice(0, -1))}>
        Previous page
      </button>
      <button type="button" disabled={!next} onClick={() => next && onChange([...pages, next])}>
        Next page
      </button>
    </nav>
  );
}
