/** Public surface of the vSphere (vim25 SOAP) client. */
export { VimClient } from './vim-client';
export { queryAllChangedAreas, ChangedAreasError } from './changed-areas';
export type { ChangedAreasErrorReason, ChangedArea, QueryAllChangedAreasOptions } from './changed-areas';
export type { VimConnectOptions, ServiceContent } from './vim-client';
export type { MoRef, ObjectContent } from './vim-types';
export type { VmHardware, VmDisk, VmNic, PowerState } from './vm-hardware';
export type { PropertyFilterSpec, PropertySpec, ObjectSpec, TraversalSpec } from './vim-requests';
export {
  VimError,
  VimFaultError,
  InvalidLoginError,
  VmNotFoundError,
  VimConnectionError,
  VimHttpError,
  VimTaskTimeoutError,
} from './vim-faults';
