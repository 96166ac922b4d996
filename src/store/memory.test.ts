import { blobStoreSuite } from './driver-suite.js';
import { MemoryBlobStore } from './memory.js';

blobStoreSuite('memory', async () => ({ store: new MemoryBlobStore(), cleanup: async () => undefined }));
