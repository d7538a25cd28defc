/**
 * Chunks finish out of order; the watermark is the first chunk index below which every chunk has finished.
 * Only finished chunks above the watermark are remembered, so memory stays bounded by the in-flight window.
 */
export class ContiguousWatermark {
  private next: number;
  private readonly finishedAhead = new Set<number>();

  constructor(firstIndex: number) {
    this.next = firstIndex;
  }

  /** Index of the first chunk not yet known finished. */
  get index(): number {
    return this.next;
  }

  /** Returns true when the watermark moved. */
  finish(index: number): boolean {
    if (index < this.next || this.finishedAhead.has(index)) throw new Error(`chunk ${index} finished twice`);
    if (index !== this.next) {
      this.finishedAhead.add(index);
      return false;
    }
    this.next++;
    while (this.finishedAhead.delete(this.next)) this.next++;
    return true;
  }
}
