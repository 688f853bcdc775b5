/**
 * The worker's log stream: every SDK, workflow, activity and core log line goes through one
 * `Logger`, written to stdout as one JSON object per line (for log shippers) or as a short
 * readable line (for people at a terminal). The SDK's `DefaultLogger` does the level filtering
 * and the timestamps; only the rendering is ours.
 */
import type { LogEntry, LogLevel, LogMetadata, Logger } from '@temporalio/worker';
import { DefaultLogger } from '@temporalio/worker';

export type LogFormat = 'json' | 'pretty';

/** The fields a log search joins on, first in every JSON line, in this order. */
export const LEADING_FIELDS = [
  'workflowId',
  'runId',
  'workflowType',
  'activityType',
  'attempt',
  'service',
  'operation',
  'code',
  'requestId',
] as const;

/** A JSON-safe value: errors become their name, message and stack; bigints, strings. */
function plain(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    const cause = (value as Error & { cause?: unknown }).cause;
    return {
      name: value.name,
      message: value.message,
      ...(value.stack ? { stack: value.stack } : {}),
      ...(cause !== undefined && depth < 3 ? { cause: plain(cause, depth + 1) } : {}),
    };
  }
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return depth < 5 ? value.map((v) => plain(v, depth + 1)) : '[…]';
  if (value !== null && typeof value === 'object') {
    if (depth >= 5) return '{…}';
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v, depth + 1)]));
  }
  return value;
}

/** One JSON object, no newline inside: level, time, message, the ids, then everything else. */
export function jsonLine(entry: LogEntry): string {
  // The SDK names the run `runId` on workflow lines but `workflowRunId` on activity lines: one
  // name, so a search by run id finds the activities' lines (AWS errors among them) too.
  const { workflowRunId, ...rest } = entry.meta ?? {};
  const meta: LogMetadata =
    rest.runId === undefined && workflowRunId !== undefined
      ? { ...rest, runId: workflowRunId as unknown }
      : (entry.meta ?? {});
  const record: Record<string, unknown> = {
    level: entry.level.toLowerCase(),
    time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    message: entry.message,
  };
  for (const key of LEADING_FIELDS) if (meta[key] !== undefined) record[key] = plain(meta[key]);
  for (const [key, value] of Object.entries(meta)) {
    if (value === undefined || key in record) continue;
    record[key] = plain(value);
  }
  return JSON.stringify(record);
}

const COLOURS: Record<LogLevel, string> = {
  TRACE: '\x1b[90m',
  DEBUG: '\x1b[90m',
  INFO: '\x1b[36m',
  WARN: '\x1b[33m',
  ERROR: '\x1b[31m',
};

/** `12:00:01.234 INFO  message  workflowId=… activityType=…`, coloured when `colour`. */
export function prettyLine(entry: LogEntry, colour: boolean): string {
  const meta: LogMetadata = entry.meta ?? {};
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString().slice(11, 23);
  const level = entry.level.padEnd(5);
  const fields = Object.entries(meta)
    .filter(([k, v]) => v !== undefined && k !== 'sdkComponent' && k !== 'taskQueue' && k !== 'namespace')
    .map(([k, v]) => {
      const shown = plain(v);
      return `${k}=${typeof shown === 'string' ? shown : JSON.stringify(shown)}`;
    })
    .join(' ');
  const head = colour ? `${COLOURS[entry.level]}${level}\x1b[0m` : level;
  return `${time} ${head} ${entry.message}${fields ? `  ${fields}` : ''}`;
}

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevel;
  /** Where lines go; stdout by default. */
  write?: (line: string) => void;
  /** Colour in pretty mode (a terminal). */
  colour?: boolean;
}

export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const colour = opts.colour ?? false;
  return new DefaultLogger(opts.level, (entry) =>
    write(opts.format === 'json' ? jsonLine(entry) : prettyLine(entry, colour)),
  );
}
