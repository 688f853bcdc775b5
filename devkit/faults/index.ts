export type { FaultProxy, FaultStats } from './fault-proxy';
export { startFaultProxy, startHeldImagesProxy } from './fault-proxy';
export type { FaultOptions } from './options';
export { NO_FAULTS, REALISTIC_FAULTS, describeFaults, faultOptionsFromEnv } from './options';
