/**
 * The OpenTelemetry trace pipeline the worker and the client library share: on when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set and
 * `OTEL_SDK_DISABLED` is not `true`, off otherwise. Spans go by OTLP/HTTP; the exporter reads the
 * endpoint, headers and timeout from the standard `OTEL_EXPORTER_OTLP_*` variables.
 *
 * Imports no Temporal worker code, so the client (and the CLI) can use it as it uses
 * ./config.ts and ./connection.ts.
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { tracingWanted } from './otlp-wanted';

export interface OtlpPipeline {
  resource: Resource;
  spanProcessor: SpanProcessor;
  provider: NodeTracerProvider;
}

export { tracingWanted };

/**
 * A tracer provider exporting by OTLP, registered as the global one (W3C propagation and an
 * AsyncLocalStorage context, so spans started inside a traced call nest under it), or undefined
 * when tracing is off. `serviceName` applies unless OTEL_SERVICE_NAME says otherwise.
 */
export function startOtlpPipeline(
  serviceName: string,
  env: Record<string, string | undefined> = process.env,
): OtlpPipeline | undefined {
  if (!tracingWanted(env)) return undefined;
  const resource = new Resource({ 'service.name': env.OTEL_SERVICE_NAME || serviceName });
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // A second registration in one process (a client inside the worker's process) keeps the first
  // global provider; the propagator and context manager are the same either way.
  provider.register();
  return { resource, spanProcessor, provider };
}
