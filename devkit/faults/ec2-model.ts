/**
 * What the fault layer remembers about the sandbox's EC2, and the EC2 behaviour it adds on top:
 * ids not visible yet, instances in transition, images still pending, ClientTokens already used.
 * Pure bookkeeping on a clock: the proxy (fault-proxy.ts) asks it before and after each call.
 */
import type { FaultOptions } from './options';
import { allTags, errorXml, mapSetItems, paramValues } from './xml';

export type TransitionState = 'pending' | 'stopping' | 'shutting-down';

const STATE_CODES: Record<TransitionState | 'running', number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  stopping: 64,
};

/** An answer the layer gives instead of the sandbox's. */
export interface FaultAnswer {
  status: number;
  body: string;
  /** The counter this answer adds to (`throttled`, `notVisible`…). */
  fault: string;
}

interface Transition {
  state: TransitionState;
  until: number;
  /** When the status checks pass (instances that end up running). */
  checksUntil?: number;
}

interface TokenRecord {
  fingerprint: string;
  body: string;
}

const NOT_FOUND: Record<string, { code: string; message: (id: string) => string }> = {
  ami: { code: 'InvalidAMIID.NotFound', message: (id) => `The image id '[${id}]' does not exist` },
  i: { code: 'InvalidInstanceID.NotFound', message: (id) => `The instance ID '${id}' does not exist` },
  snap: { code: 'InvalidSnapshot.NotFound', message: (id) => `The snapshot '${id}' does not exist.` },
};

/** Parameters that name one resource by id, as Describe* by id and the mutating calls send them. */
const ID_PARAM = /^(ImageId|InstanceId|SnapshotId|ResourceId|SourceImageId)(\.\d+)?$/;

/** The listing each Describe* returns, and the tag naming an item's id in it. */
const LISTINGS: Record<string, { set: string; idTag: string }> = {
  DescribeImages: { set: 'imagesSet', idTag: 'imageId' },
  DescribeInstances: { set: 'reservationSet', idTag: 'instanceId' },
  DescribeSnapshots: { set: 'snapshotSet', idTag: 'snapshotId' },
  DescribeInstanceStatus: { set: 'instanceStatusSet', idTag: 'instanceId' },
};

export class Ec2Model {
  /** id → epoch ms from which Describe* sees it. */
  private readonly visibleAt = new Map<string, number>();
  private readonly transitions = new Map<string, Transition>();
  private readonly imagePendingUntil = new Map<string, number>();
  private readonly tokens = new Map<string, TokenRecord>();

  constructor(
    private options: () => FaultOptions,
    private readonly now: () => number,
  ) {}

  reset(): void {
    this.visibleAt.clear();
    this.transitions.clear();
    this.imagePendingUntil.clear();
    this.tokens.clear();
  }

  /** Whether `id` was made through the layer and is still inside its consistency window. */
  invisible(id: string): boolean {
    const at = this.visibleAt.get(id);
    return at !== undefined && this.now() < at;
  }

  /** The transition state the layer shows for the instance, if one is going on. */
  transition(instanceId: string): TransitionState | undefined {
    const t = this.transitions.get(instanceId);
    return t && this.now() < t.until ? t.state : undefined;
  }

  /** NotFound for a call naming an id that is not visible yet (Describe* always, mutating calls if asked). */
  notVisible(action: string, params: URLSearchParams): FaultAnswer | undefined {
    if (!action.startsWith('Describe') && !this.options().mutatingNotFound) return undefined;
    const id = paramValues(params, ID_PARAM).find((v) => this.invisible(v));
    if (!id) return undefined;
    const kind = NOT_FOUND[id.slice(0, id.indexOf('-'))];
    if (!kind) return undefined;
    return { status: 400, body: errorXml(kind.code, kind.message(id)), fault: 'notVisible' };
  }

  /** IncorrectInstanceState for calls EC2 refuses while an instance is pending or stopping. */
  incorrectState(action: string, params: URLSearchParams): FaultAnswer | undefined {
    const refused: Record<string, { states: TransitionState[]; verb: string }> = {
      StartInstances: { states: ['stopping', 'shutting-down'], verb: 'started' },
      StopInstances: { states: ['pending', 'shutting-down'], verb: 'stopped' },
      CreateImage: { states: ['pending', 'stopping', 'shutting-down'], verb: 'imaged' },
    };
    const rule = refused[action];
    if (!rule) return undefined;
    for (const id of paramValues(params, /^InstanceId(\.\d+)?$/)) {
      const state = this.transition(id);
      if (state && rule.states.includes(state))
        return {
          status: 400,
          body: errorXml(
            'IncorrectInstanceState',
            `The instance '${id}' is not in a state from which it can be ${rule.verb} (it is ${state}).`,
          ),
          fault: 'incorrectState',
        };
    }
    return undefined;
  }

  /** The earlier answer to a call repeated with the same ClientToken (EC2's idempotency). */
  replay(key: string | undefined, params: URLSearchParams): FaultAnswer | undefined {
    if (!key) return undefined;
    const seen = this.tokens.get(key);
    if (!seen) return undefined;
    if (seen.fingerprint !== fingerprint(params))
      return {
        status: 400,
        body: errorXml(
          'IdempotentParameterMismatch',
          'The client token was used before with other parameters.',
        ),
        fault: 'tokenMismatch',
      };
    return { status: 200, body: seen.body, fault: 'tokenReplay' };
  }

  rememberToken(key: string | undefined, params: URLSearchParams, body: string): void {
    if (key) this.tokens.set(key, { fingerprint: fingerprint(params), body });
  }

  /** New ids from a successful call start their consistency window. */
  created(ids: string[]): void {
    const at = this.now() + this.options().consistencyMs;
    for (const id of ids) if (!this.visibleAt.has(id)) this.visibleAt.set(id, at);
  }

  imageCreated(imageId: string): void {
    this.imagePendingUntil.set(imageId, this.now() + this.options().imagePendingMs);
  }

  /** Instance state changes the sandbox makes at once take time here, per the instance's previous state. */
  stateChanged(action: string, responseBody: string): void {
    const o = this.options();
    const now = this.now();
    mapSetItems(responseBody, 'instancesSet', (item) => {
      const id = allTags(item, 'instanceId')[0];
      const previous = /<previousState>.*?<name>([a-z-]+)<\/name>/.exec(item)?.[1];
      if (!id) return item;
      if (action === 'RunInstances' || (action === 'StartInstances' && previous !== 'running')) {
        const until = now + o.pendingMs;
        this.transitions.set(id, { state: 'pending', until, checksUntil: until + o.statusChecksMs });
      } else if (action === 'StopInstances' && previous === 'running') {
        this.transitions.set(id, { state: 'stopping', until: now + o.stoppingMs });
      } else if (action === 'TerminateInstances' && previous !== 'terminated') {
        this.transitions.set(id, { state: 'shutting-down', until: now + o.stoppingMs });
      }
      return item;
    });
  }

  /** A Describe* answer as EC2 would give it now: new ids missing, transitions and pending images shown. */
  rewrite(action: string, params: URLSearchParams, body: string): { body: string; hidden: number } {
    const listing = LISTINGS[action];
    if (!listing) return { body, hidden: 0 };
    let hidden = 0;
    const includeAll = params.get('IncludeAllInstances') === 'true';
    const out = mapSetItems(body, listing.set, (item) => {
      const ids = allTags(item, listing.idTag);
      if (ids.some((id) => this.invisible(id))) {
        hidden += 1;
        return undefined;
      }
      if (action === 'DescribeImages') return this.imageItem(item, ids[0]);
      if (action === 'DescribeInstances')
        return mapSetItems(item, 'instancesSet', (inst) => this.instanceItem(inst));
      return this.statusItem(item, ids[0], includeAll);
    });
    return { body: out, hidden };
  }

  private imageItem(item: string, id: string | undefined): string {
    const until = id ? this.imagePendingUntil.get(id) : undefined;
    if (until === undefined || this.now() >= until) return item;
    return item.replace('<imageState>available</imageState>', '<imageState>pending</imageState>');
  }

  private instanceItem(item: string): string {
    const id = allTags(item, 'instanceId')[0];
    const state = id ? this.transition(id) : undefined;
    if (!state) return item;
    return item.replace(/<instanceState>.*?<\/instanceState>/, stateXml(state));
  }

  private statusItem(item: string, id: string | undefined, includeAll: boolean): string | undefined {
    const t = id ? this.transitions.get(id) : undefined;
    if (!t) return item;
    const now = this.now();
    if (now < t.until) {
      if (!includeAll) return undefined;
      return item.replace(/<instanceState>.*?<\/instanceState>/, stateXml(t.state));
    }
    if (t.checksUntil === undefined || now >= t.checksUntil) return item;
    return item.replace(/<status>(ok|passed)<\/status>/g, '<status>initializing</status>');
  }
}

function stateXml(state: TransitionState): string {
  return `<instanceState><code>${STATE_CODES[state]}</code><name>${state}</name></instanceState>`;
}

/** The call's parameters without its token and version, in a stable order. */
function fingerprint(params: URLSearchParams): string {
  return [...params]
    .filter(([k]) => k !== 'ClientToken' && k !== 'Version')
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join('&');
}
