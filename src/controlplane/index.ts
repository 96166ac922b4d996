// Public face of src/controlplane: the central registry (/v2) and the control plane API (/v1 images, metros, nodes, auth).
export { startControlPlane, DEFAULT_CONTROL_PLANE_LIMITS, DEFAULT_CONTROL_PLANE_RATE_LIMIT, type ControlPlane, type ControlPlaneOptions, type ControlPlaneLimits } from './server.js';
export { CentralImages, ImageNameError, type CentralImageEntry } from './images.js';
export { NodeDirectory, NodeDirectoryError, type NodeRecord, type MetroRecord, type NodeState } from './nodes.js';
export { createControlPlaneApi } from './api.js';
