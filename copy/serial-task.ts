/**
 * A task run in the background that never overlaps itself: `kick` starts it unless it is running, and when a run
 * ends it starts again at once while `due` still says so. A failure stops the repeats and goes to `onError`.
 */
export class SerialTask {
  private running: Promise<void> | undefined;
  private failed = false;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly due: () => boolean,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Starts a run if none is going and one is due. */
  kick(): void {
    if (this.running || this.failed || !this.due()) return;
    this.running = this.run()
      .catch((error: unknown) => {
        this.failed = true;
        this.onError(error);
      })
      .finally(() => {
        this.running = undefined;
        this.kick();
      });
  }

  /** Resolves once no run is going (a run that ends may start the next one, hence the loop). */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }
}
