// The worker's workflowsPath: every workflow type amiflow registers.
export { imageFromInstance } from './image-from-instance';
