/** The target does not hold what the source held. Names the first chunk that differs so it can be inspected. */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';

  constructor(
    readonly firstMismatchOffset: number,
    readonly chunkSize: number,
    readonly verification: { algorithm: string; source: string; target: string; match: boolean },
  ) {
    super(
      `verification failed: target differs from source in the chunk at offset ${firstMismatchOffset} ` +
        `(chunk size ${chunkSize}); source digest ${verification.source}, target digest ${verification.target}`,
    );
  }
}
