import { copyingActivities } from './copying';
import type { ActivityDeps } from './deps';
import { imageActivities } from './images';
import { instanceActivities } from './instances';
import { kmsActivities } from './kms';
import { launchActivities } from './launch';
import { sharingActivities } from './sharing';

export type { ActivityDeps } from './deps';

/** Every activity, bound to its dependencies. The worker registers the result as is. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...instanceActivities(deps),
    ...imageActivities(deps),
    ...sharingActivities(deps),
    ...kmsActivities(deps),
    ...copyingActivities(deps),
    ...launchActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
