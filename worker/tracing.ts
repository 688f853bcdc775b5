/**
 * OpenTelemetry traces, on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and the other standard
 * `OTEL_*` variables: service name, headers, protocol), off otherwise. Temporal's own interceptors
 * (`@temporalio/interceptors-opentelemetry`) trace workflows and activities with the trace carried
 * through Temporal headers; every AWS call inside an activity is a child span (activities/aws-telemetry.ts).
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';

export interface Tracing {
  plugin: OpenTelemetryPlugin;
  /** Sends what is still buffered; call after the worker stopped. */
  shutdown(): Promise<void>;
}

export function startTracing(env: Record<string, string | undefined> = process.env): Tracing | undefined {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  if (env.OTEL_SDK_DISABLED === 'true') return undefined;
  const resource = new Resource({ 'service.name': env.OTEL_SERVICE_NAME || 'amiflow-worker' });
  // The exporter reads the endpoint, headers and timeout from the OTEL_EXPORTER_OTLP_* variables.
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // Global tracer and AsyncLocalStorage context: AWS SDK spans nest under the running activity's span.
  provider.register();
  return {
    plugin: new OpenTelemetryPlugin({ resource, spanProcessor }),
    shutdown: () => provider.shutdown(),
  };
}
