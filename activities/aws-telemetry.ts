/**
 * One middleware on every AWS client amiflow builds: each call carries `amiflow` and a short run
 * reference in its user agent (CloudTrail's `userAgent` then ties the call to the run), and each
 * error is counted by service, operation and code (throttles apart) and logged once with the
 * request id AWS support asks for, through the activity's logger so the line carries the run's ids.
 */
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Context } from '@temporalio/activity';
import type { MetricMeter } from '@temporalio/common';
import type {
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  MetadataBearer,
  Pluggable,
} from '@smithy/types';
import { METRIC } from '../workflows/metric-names';
import { awsErrorCode, classifyAwsError } from './errors';

export const AMIFLOW_USER_AGENT: [string, string] = ['amiflow', '0.1.0'];

/** The activity running this call, when there is one (an AWS call outside activities has none). */
function currentActivity(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** `<workflow type>#<first 8 of the run id>`: short, and enough to find the run in Temporal. */
export function runReference(info: {
  workflowType?: string | undefined;
  workflowExecution?: { runId: string } | undefined;
}): string {
  return `${info.workflowType ?? 'standalone'}#${(info.workflowExecution?.runId ?? '').slice(0, 8)}`;
}

/** `EC2Client` → `ec2`, `DescribeImagesCommand` → `DescribeImages`. */
export function serviceAndOperation(context: HandlerExecutionContext): {
  service: string;
  operation: string;
} {
  return {
    service: (context.clientName ?? 'unknown').replace(/Client$/, '').toLowerCase(),
    operation: (context.commandName ?? 'unknown').replace(/Command$/, ''),
  };
}

export function awsTelemetry(meter: MetricMeter | undefined): Pluggable<object, MetadataBearer> {
  const errors = meter?.createCounter(
    METRIC.awsErrors,
    undefined,
    'AWS API errors by service, operation, code',
  );
  const throttles = meter?.createCounter(METRIC.awsThrottles, undefined, 'AWS throttling answers');
  const tracer = trace.getTracer('amiflow-aws');
  function recordError(
    activity: Context | undefined,
    service: string,
    operation: string,
    code: string,
    err: unknown,
  ): void {
    const c = classifyAwsError(err);
    errors?.add(1, { service, operation, code });
    if (c.retry && c.reason === 'throttling') throttles?.add(1, { service, operation });
    const metadata = (err as { $metadata?: { requestId?: string; httpStatusCode?: number } }).$metadata;
    activity?.log.warn(`AWS ${service}:${operation} failed with ${code}`, {
      service,
      operation,
      code,
      ...(metadata?.requestId ? { requestId: metadata.requestId } : {}),
      ...(metadata?.httpStatusCode ? { httpStatus: metadata.httpStatusCode } : {}),
      retryable: c.retry,
      awsMessage: err instanceof Error ? err.message : String(err),
    });
  }
  return {
    applyToStack(stack) {
      stack.add(
        (next: InitializeHandler<object, MetadataBearer>, context: HandlerExecutionContext) =>
          async (args: InitializeHandlerArguments<object>) => {
            const activity = currentActivity();
            if (activity) {
              // Read by the SDK's user-agent middleware for this one call.
              context.userAgent = [
                ...(context.userAgent ?? []),
                ['amiflow-run', runReference(activity.info)],
              ];
            }
            const { service, operation } = serviceAndOperation(context);
            // A child of the activity's span when tracing is on; a no-op span otherwise.
            return tracer.startActiveSpan(
              `${service}.${operation}`,
              {
                kind: SpanKind.CLIENT,
                attributes: { 'rpc.system': 'aws-api', 'rpc.service': service, 'rpc.method': operation },
              },
              async (span) => {
                try {
                  const out = await next(args);
                  const requestId = out.output.$metadata.requestId;
                  if (requestId) span.setAttribute('aws.request_id', requestId);
                  return out;
                } catch (err) {
                  const code = awsErrorCode(err);
                  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
                  recordError(activity, service, operation, code, err);
                  throw err;
                } finally {
                  span.end();
                }
              },
            );
          },
        { step: 'initialize', name: 'amiflowTelemetry', priority: 'high' },
      );
    },
  };
}
