/** A failure the CLI reports as one line on stderr with a non-zero exit code (no stack trace). */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    /** 1: the API refused or failed; 2: a usage mistake. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
