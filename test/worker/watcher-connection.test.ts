/**
 * The watcher's client connection (worker/connection.ts): how long one call retried inside the
 * client waits between attempts decides how soon a held wait's answer lands after a server outage.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StatusObject } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { defaultGrpcRetryOptions } from '@temporalio/client';
import { WATCHER_CONNECTION, WATCHER_RETRY } from '../../worker/connection';

const UNAVAILABLE = 14;
const RESOURCE_EXHAUSTED = 8;
const status = (code: number): StatusObject => ({ code, details: '', metadata: new Metadata() });
const longestDelay = (opts: typeof WATCHER_RETRY, code: number) =>
  Math.max(...Array.from({ length: 200 }, (_, i) => opts.delayFunction(1 + (i % 9), status(code))));

void describe('the watcher connection', () => {
  void it('GIVEN the server is away (UNAVAILABLE) WHEN a call is retried inside the client THEN no wait between its attempts exceeds ~0.5 s (the default reaches 6 s)', () => {
    assert.ok(longestDelay(WATCHER_RETRY, UNAVAILABLE) <= 600, 'watcher: at most 0.5 s plus jitter');
    assert.ok(
      longestDelay(defaultGrpcRetryOptions(), UNAVAILABLE) > 4_000,
      'control: the default backs off to 5 s',
    );
    assert.ok(WATCHER_RETRY.retryableDecider(1, status(UNAVAILABLE)), 'UNAVAILABLE is still retried');
  });

  void it('GIVEN the server throttles (RESOURCE_EXHAUSTED) WHEN a call is retried THEN it still backs off to seconds', () => {
    assert.ok(longestDelay(WATCHER_RETRY, RESOURCE_EXHAUSTED) > 4_000);
  });

  void it('GIVEN the watcher connection THEN it carries the retry interceptor and the 1 s reconnect cap', () => {
    assert.equal(WATCHER_CONNECTION.interceptors.length, 1);
    assert.equal(WATCHER_CONNECTION.channelArgs['grpc.max_reconnect_backoff_ms'], 500);
  });
});
