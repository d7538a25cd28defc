/**
 * The SDK warns when a worker has no workflows or no activities to poll for. vmigrate's workers do that by design (the
 * `workflows` and `activities` roles; a host's own task queue carries activities only), so those are debug lines here,
 * not warnings an operator should chase.
 */
const BY_DESIGN = ['No workflows registered, not polling for workflow tasks', 'No activities registered, not polling for activity tasks'];

export function sdkLogLevel<L extends string>(level: L, message: string): L | 'DEBUG' {
  return BY_DESIGN.some((m) => message.startsWith(m)) ? 'DEBUG' : level;
}
