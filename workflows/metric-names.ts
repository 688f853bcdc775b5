/**
 * amiflow's own Prometheus metrics, named once. Emitted through the Temporal SDK's metric meter
 * (workflow and activity meters add `namespace`, `task_queue`, `workflow_type`/`activity_type`),
 * so they come out of the same `/metrics` endpoint as the SDK's. Counters get `_total` from the
 * exporter; durations are in seconds. Labels are low-cardinality enums: never ids.
 */
export const METRIC = {
  /** Counter{mode, outcome}: imageFromInstance runs ended. */
  imagesMade: 'amiflow_images_made',
  /** Histogram: seconds the source instance was stopped by a `stop`-mode image. */
  instanceDowntime: 'amiflow_instance_downtime_seconds',
  /** Histogram: seconds an app-consistent image kept the instance's file systems frozen (instance clock). */
  freezeDuration: 'amiflow_freeze_duration_seconds',
  /** Histogram: seconds from CreateImage to the image being `available`. */
  imageWait: 'amiflow_image_wait_seconds',
  /** Gauge (per activity_type): waiting activities polling AWS on this worker right now. */
  waitsInFlight: 'amiflow_waits_in_flight',
  /** Counter{outcome}: copyImage runs ended. */
  copies: 'amiflow_copies',
  /** Counter{outcome}: shareImage runs ended. */
  shares: 'amiflow_shares',
  /** Counter{outcome=done|failed}: compensations (undo steps) run. */
  compensations: 'amiflow_compensations',
  /** Counter{outcome} per workflow_type: every amiflow run ended. */
  runs: 'amiflow_runs',
  /** Counter{service, operation, code}: AWS API errors (throttles included). */
  awsErrors: 'amiflow_aws_errors',
  /** Counter{service, operation}: AWS throttling answers, counted apart so alerts can watch them. */
  awsThrottles: 'amiflow_aws_throttles',
  /** Counter{reason}: scheduled runs that did nothing (already done, outside the window). */
  scheduleRunsSkipped: 'amiflow_schedule_runs_skipped',
} as const;

/** What a run's end looks like in metrics and in the `AmiflowOutcome` search attribute. */
export type RunOutcome = 'succeeded' | 'succeeded-with-problems' | 'failed' | 'cancelled';
