/**
 * Whether the standard OpenTelemetry variables ask for traces. Apart from ./otlp.ts so the worker can
 * ask without loading the OpenTelemetry SDK and its OTLP exporter (~6 MB resident, issue 13's idle
 * figure) when tracing is off, as it is unless an endpoint is set.
 */
export function tracingWanted(env: Record<string, string | undefined> = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}
