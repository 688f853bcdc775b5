// The worker's workflowsPath: every workflow type amiflow registers.
export { imageFromInstance } from './image-from-instance';
export { shareImage, unshareImage } from './share-image';
export { shareLedger } from './share-ledger';
export { copyImage } from './copy-image';
export { migrateInstance } from './migrate-instance';
export { goldenImage } from './golden-image';
export { backupInstances } from './backup';
export { approvedImages } from './approved-images';
export { complianceScan } from './compliance-scan';
export { enforceAllowedAmis } from './enforce-allowed-amis';
export { buildImage } from './build-image';
export { rolloutImage } from './rollout-image';
export { waitLease } from './wait-lease';
