import type { AwsClients } from './aws';
import type { Clock, PollPolicy } from './waiting';

/** Everything activities need from outside, injected by the worker (or a test). */
export interface ActivityDeps {
  aws: AwsClients;
  clock: Clock;
  random: () => number;
  policy: PollPolicy;
  /** Receives each waiting heartbeat's details (tests and benchmarks count them). */
  onHeartbeat?: (details: unknown) => void;
}
