/**
 * OpenTelemetry traces for the worker, on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and the other
 * standard `OTEL_*` variables: service name, headers, protocol), off otherwise (./otlp.ts, shared
 * with the client). Temporal's own interceptors (`@temporalio/interceptors-opentelemetry`) trace
 * workflows and activities with the trace carried through Temporal headers, so a run started by a
 * traced client continues the client's trace; every AWS call inside an activity is a child span
 * (activities/aws-telemetry.ts).
 */
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import { startOtlpPipeline } from './otlp';

export interface Tracing {
  plugin: OpenTelemetryPlugin;
  /** Sends what is still buffered; call after the worker stopped. */
  shutdown(): Promise<void>;
}

export function startTracing(env: Record<string, string | undefined> = process.env): Tracing | undefined {
  const pipeline = startOtlpPipeline('amiflow-worker', env);
  if (!pipeline) return undefined;
  const { resource, spanProcessor, provider } = pipeline;
  return {
    plugin: new OpenTelemetryPlugin({ resource, spanProcessor }),
    shutdown: () => provider.shutdown(),
  };
}
