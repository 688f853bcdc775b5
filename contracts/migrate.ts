/**
 * migrateInstance: move an instance to another Availability Zone.
 */
import type { AwsTarget } from './common';
import type { ImageFromInstanceTimeouts } from './image';
import { DEFAULT_TIMEOUTS } from './image';

/**
 * What happens to the source once the new instance runs and passed both status checks:
 * - `keep`: left as it was (running again after the `stop`-mode image, or still stopped);
 * - `stop`: stopped before it is imaged and left stopped (no writes after the image, so no split brain);
 * - `terminate`: stopped before it is imaged, terminated once the new instance passed its checks.
 */
export const SOURCE_ACTIONS = ['keep', 'stop', 'terminate'] as const;
export type SourceAction = (typeof SOURCE_ACTIONS)[number];
/** An Elastic IP on the source: `move` it to the new instance after its checks, or `leave` it on the source. */
export const ELASTIC_IP_ACTIONS = ['move', 'leave'] as const;
export type ElasticIpAction = (typeof ELASTIC_IP_ACTIONS)[number];

export interface MigrateInstanceOverrides {
  /** Instead of the source's instance type. */
  instanceType?: string;
  /** The subnet to launch into (it sets the target AZ); default: a subnet of the source's VPC in the target AZ. */
  subnetId?: string;
  /** Instead of the source's security groups (needed when the subnet is in another VPC). */
  securityGroupIds?: string[];
}

export interface MigrateInstanceTimeouts extends ImageFromInstanceTimeouts {
  /** Longest wait for the new instance to run and pass both status checks. Default 1800 s. */
  instanceReadySeconds?: number;
}

export interface MigrateInstanceInput extends AwsTarget {
  instanceId: string;
  /** e.g. `eu-west-1b`; may be omitted when `overrides.subnetId` names the target subnet. */
  targetAvailabilityZone?: string;
  sourceAction: SourceAction;
  /** Keep the intermediate AMI (and its snapshots) after a successful migration. Default false. */
  keepImage?: boolean;
  /** Name of the intermediate AMI; default `amiflow-migrate-<instance>-to-<az>-<run>`. */
  imageName?: string;
  /** Required when the source has an Elastic IP. */
  elasticIp?: ElasticIpAction;
  /** Required when the source has network interfaces besides its primary one: they stay with the source. */
  extraNetworkInterfaces?: 'leave';
  overrides?: MigrateInstanceOverrides;
  timeouts?: MigrateInstanceTimeouts;
}

export interface MigrateInstanceResult {
  region: string;
  accountId?: string;
  sourceInstanceId: string;
  newInstanceId: string;
  sourceAvailabilityZone: string;
  targetAvailabilityZone: string;
  subnetId: string;
  instanceType: string;
  sourceInitialState: 'running' | 'stopped';
  sourceFinalState: 'running' | 'stopped' | 'terminated';
  /** The new instance ends in the state the source started in. */
  newInstanceState: 'running' | 'stopped';
  elasticIp?: { allocationId: string; publicIp: string; movedToNewInstance: boolean };
  /** The intermediate AMI: kept when asked, otherwise deleted with its snapshots. */
  image: { imageId: string; snapshotIds: string[]; kept: boolean; deleted: boolean; error?: string };
  /**
   * Seconds the workload was not served because of this run: `keep`: the source's stop → start
   * while it was imaged; `stop`/`terminate`: the source's stop → the new instance passing its
   * checks (and the Elastic IP moved). 0 for a source that was stopped already.
   */
  downtimeSeconds: number;
  /** What could not be carried over to the new instance, in words (e.g. the private IP address). */
  notCarriedOver: string[];
  startedAt: string;
  finishedAt: string;
}

export const DEFAULT_MIGRATION_TIMEOUTS: Required<MigrateInstanceTimeouts> = {
  ...DEFAULT_TIMEOUTS,
  instanceReadySeconds: 1800,
};
