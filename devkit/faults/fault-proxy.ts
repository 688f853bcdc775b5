/**
 * The fault layer: an HTTP proxy in front of the AWS sandbox (moto_server) that makes it behave like
 * real EC2 on a busy account. The worker reaches it exactly as it reaches AWS (AMIFLOW_AWS_ENDPOINT),
 * so every worker process, killed and restarted, sees the same EC2: the layer's memory (ids not
 * visible yet, transitions, tokens) lives here, not in the worker.
 *
 * Modelled (see options.ts): eventual consistency of new ids, pending/stopping/shutting-down
 * durations with IncorrectInstanceState, images pending for a while, throttling, 5xx before and
 * after the call is applied, latency. Gaps of the sandbox filled: unique AMI names per account and
 * region, ClientToken idempotency for RunInstances and CopyImage, CopyImage tag specifications.
 * AWS rules (aws-rules.ts): concurrency limit errors at a rate, names held after deregistration,
 * launch permissions reaching the grantee late, Allowed AMIs (GetAllowedImagesSettings and the images
 * it hides), DescribeImageReferences (answered from the sandbox's instances, at most 10 ids).
 * Only EC2 gets faults; STS, KMS and SSM pass through (counted). Every call is counted per action.
 *
 * Admin (JSON): GET /__faults/stats, POST /__faults/options (a partial FaultOptions), POST
 * /__faults/reset. POST /moto-api/reset resets the sandbox and the layer together.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AwsRulesModel,
  allowedImagesSettingsXml,
  imageReferencesXml,
  limitError,
  refusedReferences,
} from './aws-rules';
import { Ec2Model } from './ec2-model';
import type { FaultAnswer } from './ec2-model';
import type { FaultOptions } from './options';
import { NO_FAULTS } from './options';
import { unitDraw } from './random';
import { allTags, errorXml, firstTag } from './xml';

export interface FaultStats {
  /** EC2 calls by action (`CreateImage`), other services as `kms:ListGrants`, `sts:AssumeRole`. */
  calls: Record<string, number>;
  /** Answers the layer gave instead of the sandbox's, by kind. */
  faults: Record<string, number>;
}

export interface FaultProxy {
  endpoint: string;
  options(): FaultOptions;
  configure(patch: Partial<FaultOptions>): void;
  stats(): FaultStats;
  /**
   * Resolves with the sandbox's answer to the next `action` call that is applied (a test acts
   * "right after CreateImage" by awaiting it; the caller may still be told a 5xx).
   */
  nextApplied(action: string, match?: (body: string) => boolean): Promise<string>;
  /** Forget ids, transitions, tokens and counts (the sandbox itself is untouched). */
  reset(): void;
  stop(): Promise<void>;
}

interface Forwarded {
  status: number;
  contentType: string;
  body: string;
}

interface Call {
  action: string;
  region: string;
  params: URLSearchParams;
  headers: Record<string, string>;
}

const CREATES_IMAGE = new Set(['CreateImage', 'CopyImage', 'RegisterImage']);
const TAKES_TOKEN = new Set(['RunInstances', 'CopyImage']);

export async function startFaultProxy(opts: {
  target: string;
  options?: Partial<FaultOptions>;
  /** Epoch ms; tests pass a clock they move, so windows pass without sleeping. */
  clock?: () => number;
  port?: number;
}): Promise<FaultProxy> {
  let options: FaultOptions = { ...NO_FAULTS, ...opts.options };
  const now = opts.clock ?? Date.now;
  const model = new Ec2Model(() => options, now);
  const rules = new AwsRulesModel(() => options, now);
  const calls: Record<string, number> = {};
  const faults: Record<string, number> = {};
  const inflight = new Map<string, Promise<void>>();
  const waiting = new Map<string, { match: (body: string) => boolean; resolve: (body: string) => void }[]>();
  const bump = (m: Record<string, number>, k: string): number => (m[k] = (m[k] ?? 0) + 1);

  async function forward(req: IncomingMessage, body: string, path = req.url ?? '/'): Promise<Forwarded> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)) headers[k] = v;
    return send(path, req.method ?? 'POST', headers, body);
  }

  async function send(path: string, method: string, headers: Record<string, string>, body: string) {
    const res = await fetch(opts.target + path, {
      method,
      headers,
      ...(method === 'GET' || method === 'HEAD' ? {} : { body }),
    });
    return {
      status: res.status,
      contentType: res.headers.get('content-type') ?? 'text/xml',
      body: await res.text(),
    };
  }

  /** An EC2 call to the sandbox itself, as the caller (same account and region), with no faults. */
  async function direct(call: Call, params: Record<string, string>): Promise<string> {
    const p = new URLSearchParams({ Version: call.params.get('Version') ?? '2016-11-15', ...params });
    const out = await send(
      '/',
      'POST',
      { ...call.headers, 'content-type': 'application/x-www-form-urlencoded' },
      p.toString(),
    );
    return out.body;
  }

  async function gaps(call: Call): Promise<FaultAnswer | undefined> {
    const name = call.params.get('Name');
    if (!CREATES_IMAGE.has(call.action) || !name) return undefined;
    const held = rules.heldName(call.region, name);
    if (held) return held;
    const owned = await direct(call, {
      Action: 'DescribeImages',
      'Owner.1': 'self',
      'Filter.1.Name': 'name',
      'Filter.1.Value.1': name,
    });
    const holder = firstTag(owned, 'imageId');
    if (!holder) return undefined;
    const message = `AMI name ${name} is already in use by AMI ${holder}`;
    return { status: 400, body: errorXml('InvalidAMIName.Duplicate', message), fault: 'duplicateName' };
  }

  /** What a successful call leaves behind: new ids, transitions, CopyImage tags. */
  async function applied(call: Call, body: string): Promise<void> {
    const { action } = call;
    if (action === 'CreateImage' || action === 'CopyImage') {
      const imageId = firstTag(body, 'imageId');
      if (!imageId) return;
      const described = await direct(call, { Action: 'DescribeImages', 'ImageId.1': imageId });
      model.created([imageId, ...allTags(described, 'snapshotId')]);
      model.imageCreated(imageId);
      if (action === 'CopyImage') await copyTags(call, imageId, allTags(described, 'snapshotId'));
    } else if (action === 'RunInstances') {
      model.created(allTags(body, 'instanceId'));
    } else if (action === 'CreateSnapshot') {
      model.created(allTags(body, 'snapshotId'));
    }
    if (/^(Run|Start|Stop|Terminate)Instances$/.test(action)) model.stateChanged(action, body);
    if (action === 'ModifyImageAttribute') rules.launchPermissionAdded(call.params);
  }

  /** Actions the sandbox lacks, answered by the layer itself as EC2 would. */
  async function modelled(call: Call): Promise<FaultAnswer | undefined> {
    if (call.action === 'GetAllowedImagesSettings')
      return { status: 200, body: allowedImagesSettingsXml(options.allowedAmis), fault: 'modelledAction' };
    if (call.action !== 'DescribeImageReferences') return undefined;
    const refused = refusedReferences(call.params);
    if (refused) return refused;
    const body = await imageReferencesXml(call.params, call.region, (p) => direct(call, p));
    return { status: 200, body, fault: 'modelledAction' };
  }

  /** The name of the image a DeregisterImage names, read before the call (the name is held after it). */
  async function nameBeforeDeregister(call: Call): Promise<string | undefined> {
    const imageId = call.params.get('ImageId');
    if (call.action !== 'DeregisterImage' || options.nameHeldMs <= 0 || !imageId) return undefined;
    return firstTag(await direct(call, { Action: 'DescribeImages', 'ImageId.1': imageId }), 'name');
  }

  /** moto ignores CopyImage's TagSpecification; EC2 tags the copy (and its snapshots) with it. */
  async function copyTags(call: Call, imageId: string, snapshotIds: string[]): Promise<void> {
    for (let n = 1; call.params.has(`TagSpecification.${n}.ResourceType`); n++) {
      const type = call.params.get(`TagSpecification.${n}.ResourceType`);
      const ids = type === 'image' ? [imageId] : type === 'snapshot' ? snapshotIds : [];
      if (ids.length === 0) continue;
      const tagParams: Record<string, string> = { Action: 'CreateTags' };
      ids.forEach((id, i) => (tagParams[`ResourceId.${i + 1}`] = id));
      for (let t = 1; call.params.has(`TagSpecification.${n}.Tag.${t}.Key`); t++) {
        tagParams[`Tag.${t}.Key`] = call.params.get(`TagSpecification.${n}.Tag.${t}.Key`) ?? '';
        tagParams[`Tag.${t}.Value`] = call.params.get(`TagSpecification.${n}.Tag.${t}.Value`) ?? '';
      }
      await direct(call, tagParams);
      bump(faults, 'copyTagsApplied');
    }
  }

  async function ec2(call: Call, req: IncomingMessage, raw: string): Promise<Forwarded> {
    const n = bump(calls, call.action);
    const draw = (kind: string): number => unitDraw(options.seed, `${kind}|${call.action}|${n}`);
    const [lo, hi] = options.latencyMs;
    if (hi > 0) await new Promise((r) => setTimeout(r, lo + (hi - lo) * draw('latency')));
    const answer = (a: FaultAnswer): Forwarded => {
      bump(faults, a.fault);
      return { status: a.status, contentType: 'text/xml', body: a.body };
    };
    if (draw('throttle') < options.throttleRate)
      return answer({
        status: 503,
        body: errorXml('RequestLimitExceeded', 'Request limit exceeded.'),
        fault: 'throttled',
      });
    const limited =
      draw('limit') < options.limitErrorRate ? limitError(call.action, draw('limit-code')) : undefined;
    if (limited) return answer(limited);
    const serverError = draw('5xx') < options.serverErrorRate;
    const afterApply = serverError && draw('5xx-when') < options.serverErrorAfterApplyShare;
    if (serverError && !afterApply)
      return answer({
        status: 500,
        body: errorXml('InternalError', 'An internal error has occurred.'),
        fault: 'serverErrorBefore',
      });
    const token = TAKES_TOKEN.has(call.action) ? call.params.get('ClientToken') : null;
    const tokenKey = token ? `${call.region}|${call.action}|${token}` : undefined;
    // EC2 answers concurrent calls with one token as one call: a second waits for the first.
    const before = tokenKey ? inflight.get(tokenKey) : undefined;
    if (before) await before;
    let done = (): void => undefined;
    if (tokenKey) inflight.set(tokenKey, new Promise<void>((r) => (done = r)));
    try {
      return await decideAndForward(call, req, raw, tokenKey, afterApply, answer);
    } finally {
      done();
      if (tokenKey) inflight.delete(tokenKey);
    }
  }

  async function decideAndForward(
    call: Call,
    req: IncomingMessage,
    raw: string,
    tokenKey: string | undefined,
    afterApply: boolean,
    answer: (a: FaultAnswer) => Forwarded,
  ): Promise<Forwarded> {
    const early =
      model.notVisible(call.action, call.params) ??
      model.incorrectState(call.action, call.params) ??
      model.replay(tokenKey, call.params) ??
      (await gaps(call)) ??
      (await modelled(call));
    if (early) return answer(early);
    const heldName = await nameBeforeDeregister(call);
    const out = await forward(req, raw);
    if (out.status < 300) {
      await applied(call, out.body);
      if (heldName) rules.deregistered(call.region, heldName, call.params.get('ImageId') ?? '');
      const waiters = waiting.get(call.action) ?? [];
      const answered = out.body;
      for (const w of waiters.filter((x) => x.match(answered))) w.resolve(answered);
      waiting.set(
        call.action,
        waiters.filter((x) => !x.match(answered)),
      );
      model.rememberToken(tokenKey, call.params, out.body);
      const { body, hidden } = model.rewrite(call.action, call.params, out.body);
      if (hidden > 0) faults.hiddenFromListing = (faults.hiddenFromListing ?? 0) + hidden;
      out.body = body;
      if (call.action === 'DescribeImages') {
        const seen = rules.rewriteImages(call.params, out.body);
        if (seen.hidden > 0) faults.shareNotVisible = (faults.shareNotVisible ?? 0) + seen.hidden;
        if (seen.notAllowed > 0) faults.notAllowed = (faults.notAllowed ?? 0) + seen.notAllowed;
        out.body = seen.body;
      }
    }
    if (afterApply)
      return answer({
        status: 503,
        body: errorXml('Unavailable', 'The service is unavailable. Please try again shortly.'),
        fault: 'serverErrorAfter',
      });
    return out;
  }

  function reset(): void {
    model.reset();
    rules.reset();
    for (const m of [calls, faults]) for (const k of Object.keys(m)) delete m[k];
  }

  async function admin(req: IncomingMessage, body: string): Promise<Forwarded | undefined> {
    const url = req.url ?? '/';
    const json = (v: unknown): Forwarded => ({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify(v),
    });
    if (url === '/__faults/stats') return json({ calls, faults });
    if (url === '/__faults/options' && req.method === 'POST') {
      options = { ...options, ...(JSON.parse(body) as Partial<FaultOptions>) };
      return json(options);
    }
    if (url === '/__faults/reset') {
      reset();
      return json({ reset: true });
    }
    if (url.startsWith('/moto-api/reset')) {
      reset();
      return forward(req, body);
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const scope = /Credential=[^/]+\/\d+\/([^/]+)\/([^/]+)\//.exec(req.headers.authorization ?? '');
    let out = await admin(req, raw);
    if (!out && scope?.[2] === 'ec2') {
      const params = new URLSearchParams(raw);
      const headers: Record<string, string> = { authorization: req.headers.authorization ?? '' };
      const tokenHeader = req.headers['x-amz-security-token'];
      if (typeof tokenHeader === 'string') headers['x-amz-security-token'] = tokenHeader;
      out = await ec2(
        { action: params.get('Action') ?? '?', region: scope[1] ?? '', params, headers },
        req,
        raw,
      );
    } else if (!out) {
      const target = req.headers['x-amz-target'];
      const action =
        typeof target === 'string' ? target.split('.').pop() : new URLSearchParams(raw).get('Action');
      if (scope) bump(calls, `${scope[2]}:${action ?? '?'}`);
      out = await forward(req, raw);
    }
    // AWS names every answer with a request id header, which the SDK reads into `$metadata.requestId`
    // (the EC2 body's <RequestID> it drops): the id amiflow logs for AWS support.
    res.writeHead(out.status, { 'content-type': out.contentType, 'x-amzn-requestid': randomUUID() });
    res.end(out.body);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`fault layer: ${err instanceof Error ? err.message : String(err)}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    options: () => options,
    configure(patch) {
      options = { ...options, ...patch };
    },
    stats: () => ({ calls: { ...calls }, faults: { ...faults } }),
    nextApplied: (action, match = () => true) =>
      new Promise<string>((resolve) =>
        waiting.set(action, [...(waiting.get(action) ?? []), { match, resolve }]),
      ),
    reset,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The fault layer with no faults whose images stay `pending` until `release()`: its clock jumps
 * past every image made so far (and still pending), as the fleet bench and the outage phase hold
 * runs in their image wait and then let them all go at once.
 */
export async function startHeldImagesProxy(target: string): Promise<{ proxy: FaultProxy; release(): void }> {
  const hour = 3_600_000;
  let skew = 0;
  const proxy = await startFaultProxy({
    target,
    options: { imagePendingMs: 1000 * hour },
    clock: () => Date.now() + skew,
  });
  return { proxy, release: () => void (skew += 2000 * hour) };
}
