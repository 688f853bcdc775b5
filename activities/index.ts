import type { ActivityDeps } from './deps';
import { imageActivities } from './images';
import { instanceActivities } from './instances';

export type { ActivityDeps } from './deps';

/** Every activity, bound to its dependencies. The worker registers the result as is. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...instanceActivities(deps),
    ...imageActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
