/**
 * Client-side traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the worker's switch, the same
 * standard `OTEL_*` variables), every client the library connects carries
 * `@temporalio/interceptors-opentelemetry`'s client interceptor, so a run's trace starts at the
 * client (`StartWorkflow:<type>`) and the worker's workflow and activity spans continue it through
 * Temporal headers. Off, and nothing installed, when the variable is unset.
 */
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { OtlpPipeline } from '../worker/otlp';
import { startOtlpPipeline, tracingWanted } from '../worker/otlp';

export interface ClientTracing {
  interceptors: { workflow: WorkflowClientInterceptor[] };
  /** Sends the spans still buffered; the pipeline stays up for the process's other clients. */
  flush(): Promise<void>;
}

/** One pipeline per process, however many clients it connects (a service may connect often). */
let pipeline: OtlpPipeline | undefined;

/** The client interceptors and their flush, or undefined when tracing is off. */
export function clientTracing(
  env: Record<string, string | undefined> = process.env,
): ClientTracing | undefined {
  if (!tracingWanted(env)) return undefined;
  pipeline ??= startOtlpPipeline('amiflow-client', env);
  if (!pipeline) return undefined;
  const { provider } = pipeline;
  return {
    interceptors: {
      workflow: [
        new OpenTelemetryWorkflowClientInterceptor({ tracer: provider.getTracer('amiflow-client') }),
      ],
    },
    flush: () => provider.forceFlush(),
  };
}
