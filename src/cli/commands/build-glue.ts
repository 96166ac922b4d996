// Glue to the build front end's commands (owned by the build helper): one import point.
export { buildCommand } from './build/index.js';
export { imagesImportCommand } from './images-import/index.js';
