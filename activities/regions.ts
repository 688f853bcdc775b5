/** Region facts for the activities (errors.ts): the SDK's partition data, shared with the client. */
export { extraRegions, regionOfHost, regionProblem } from '../shared/regions';
