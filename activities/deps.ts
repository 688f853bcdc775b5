import type { AwsClients } from './aws';
import type { ImageWaitWatcher } from './image-wait-watcher';
import type { InstanceReads } from './instance-reads';
import type { OpenTemporalReader } from './share-runs';
import type { Clock, PollPolicy } from './waiting';
import type { FindStartedWaits, ReleaseWait } from './wait-lease';

/** Everything activities need from outside, injected by the worker (or a test). */
export interface ActivityDeps {
  aws: AwsClients;
  clock: Clock;
  random: () => number;
  policy: PollPolicy;
  /** Receives each waiting heartbeat's details (tests and benchmarks count them). */
  onHeartbeat?: (details: unknown) => void;
  /** How long NotFound for an id AWS returned means "not visible yet" (default: AMIFLOW_CONSISTENCY_WINDOW, 3 min). */
  consistencyWindowMs?: number;
  /** Reads other runs' records (a share's own result, for its withdrawal); the worker's own client. */
  temporal?: OpenTemporalReader;
  /**
   * An STS endpoint besides AWS's own that approvers' proofs may be sent to: the sandbox's
   * (the worker's `aws.endpoint`). Never set for real AWS.
   */
  stsEndpoint?: string;
  /**
   * The worker's image-wait watcher and the release of a lost lease's waits (issue 13): with them,
   * `waitForImageAvailable` completes asynchronously; without (tests), it polls in the activity.
   */
  waits?: { watcher: ImageWaitWatcher; release: ReleaseWait; findStarted?: FindStartedWaits };
  /**
   * The worker's merged reader of instance states, shared by every instance wait (instance-reads.ts):
   * its budget is AMIFLOW_INSTANCE_WAIT_CALLS_PER_SECOND. Absent (tests), one is made per deps.
   */
  instanceReads?: InstanceReads;
}
