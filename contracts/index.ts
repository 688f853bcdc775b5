/**
 * The contracts shared by workflows, activities, the worker and the client, one file per feature:
 * inputs, results, tag keys, failure type names, search-attribute keys, query and update
 * definitions. Imported by the workflow bundle, so nothing here may touch Node or AWS.
 */
export * from './common';
export * from './issues';
export * from './progress';
export * from './image';
export * from './migrate';
export * from './share';
export * from './share-ledger';
export * from './copy';
export * from './guardrails';
export * from './golden';
export * from './backup';
export * from './rollout';
