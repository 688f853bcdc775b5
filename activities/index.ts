import { allowedAmisActivities } from './allowed-amis';
import { approverActivities } from './approvers';
import { buildActivities } from './build';
import { buildStepActivities } from './build-steps';
import { catalogueActivities } from './catalogue';
import { complianceActivities } from './compliance';
import { copyingActivities } from './copying';
import type { ActivityDeps } from './deps';
import { freezeScriptActivities } from './freeze-scripts';
import { goldenActivities } from './golden';
import { imageActivities } from './images';
import { instanceActivities } from './instances';
import { kmsActivities } from './kms';
import { launchActivities } from './launch';
import { retentionActivities } from './retention';
import { runCommandActivities } from './run-command';
import { rolloutActivities } from './rollout';
import { shareRunActivities } from './share-runs';
import { sharingActivities } from './sharing';
import { ssmActivities } from './ssm';
import { releaseActivities } from './wait-lease';

export type { ActivityDeps } from './deps';

/** Every activity, bound to its dependencies. The worker registers the result as is. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...instanceActivities(deps),
    ...imageActivities(deps),
    ...sharingActivities(deps),
    ...shareRunActivities(deps),
    ...kmsActivities(deps),
    ...copyingActivities(deps),
    ...launchActivities(deps),
    ...catalogueActivities(deps),
    ...complianceActivities(deps),
    ...allowedAmisActivities(deps),
    ...goldenActivities(deps),
    ...approverActivities(deps),
    ...retentionActivities(deps),
    ...ssmActivities(deps),
    ...runCommandActivities(deps),
    ...freezeScriptActivities(deps),
    ...buildActivities(deps),
    ...buildStepActivities(deps),
    ...rolloutActivities(deps),
    ...releaseActivities(deps.waits?.release, deps.waits?.findStarted),
  };
}

export type Activities = ReturnType<typeof createActivities>;
