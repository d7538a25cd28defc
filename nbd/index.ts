/** NBD client and nbdkit launcher. */
export { NbdClient, type NbdConnectOptions } from './nbd-client';
export { NbdError, NbdAbortError, errnoName } from './nbd-errors';
export type { BlockSizeInfo } from './handshake';
export { startNbdkit, NbdkitError, type NbdkitOptions, type NbdkitFilter, type NbdkitProcess, type NbdkitExit } from './nbdkit';
