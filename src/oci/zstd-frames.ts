/**
 * Walks the frame and block headers of a zstd stream (RFC 8878 §3.1) without
 * decoding anything, to check each frame's window size before the decoder sees
 * the frame.
 *
 * Why: `fzstd` allocates the whole window of a frame up front, from the
 * header's window descriptor (or, for a single-segment frame, its content
 * size): a 20-byte frame claiming a 2 GiB window costs 2 GiB of memory before a
 * single output byte is counted against any decompressed-bytes cap. zstd's own
 * decoder refuses windows above 128 MiB unless told otherwise
 * (`ZSTD_WINDOWLOG_LIMIT_DEFAULT` = 27); we do the same, with a named limit.
 *
 * The walker only needs the sizes the headers give: a frame header, then
 * blocks (3-byte header: last flag, type, size; raw and compressed blocks carry
 * `size` bytes, RLE blocks one byte), then a 4-byte checksum when the frame
 * says so; skippable frames carry their own length. Anything it does not
 * recognise is left for the decoder to refuse.
 */

/** zstd's default decoder window limit (2^27 bytes). */
export const DEFAULT_ZSTD_MAX_WINDOW_BYTES = 128 * 1024 * 1024;

export class ZstdWindowError extends Error {
  constructor(
    readonly window: number,
    readonly max: number,
  ) {
    super(`zstd frame needs a ${window}-byte window, more than the ${max}-byte limit`);
    this.name = 'ZstdWindowError';
  }
}

type State =
  | { kind: 'magic' } // 4 bytes
  | { kind: 'skippable-size' } // 4 bytes after a skippable magic
  | { kind: 'frame-header' } // descriptor byte, then the rest of the header
  | { kind: 'block-header'; checksum: boolean } // 3 bytes
  | { kind: 'unknown' }; // not zstd as far as we can tell: the decoder decides

const ZSTD_MAGIC = 0xfd2fb528;

/** Feed it the compressed bytes in order; `check` throws `ZstdWindowError` before a frame with a too-large window is passed on. */
export class ZstdFrameGuard {
  private state: State = { kind: 'magic' };
  private skip = 0;
  private head: number[] = [];

  constructor(private readonly maxWindow: number = DEFAULT_ZSTD_MAX_WINDOW_BYTES) {}

  check(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length && this.state.kind !== 'unknown') {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.head.push(chunk[i] as number);
      i++;
      this.step();
    }
  }

  private step(): void {
    const h = this.head;
    const u32 = (at: number): number => ((h[at] as number) | ((h[at + 1] as number) << 8) | ((h[at + 2] as number) << 16) | ((h[at + 3] as number) << 24)) >>> 0;
    switch (this.state.kind) {
      case 'magic': {
        if (h.length < 4) return;
        const magic = u32(0);
        this.head = [];
        if (magic === ZSTD_MAGIC) this.state = { kind: 'frame-header' };
        else if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) this.state = { kind: 'skippable-size' };
        else this.state = { kind: 'unknown' };
        return;
      }
      case 'skippable-size': {
        if (h.length < 4) return;
        this.skip = u32(0);
        this.head = [];
        this.state = { kind: 'magic' };
        return;
      }
      case 'frame-header': {
        const fhd = h[0] as number;
        const fcsFlag = fhd >> 6;
        const singleSegment = (fhd >> 5) & 1;
        const checksum = ((fhd >> 2) & 1) === 1;
        const dictIdBytes = [0, 1, 2, 4][fhd & 3] as number;
        const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
        const need = 1 + (singleSegment ? 0 : 1) + dictIdBytes + fcsBytes;
        if (h.length < need) return;
        let window: number;
        if (singleSegment) {
          // The window is the content size (read as the decoder reads it).
          const at = 1 + dictIdBytes;
          let size = 0;
          for (let b = fcsBytes - 1; b >= 0; b--) size = size * 256 + (h[at + b] as number);
          window = fcsBytes === 2 ? size + 256 : size;
        } else {
          const wd = h[1] as number;
          const base = 2 ** (10 + (wd >> 3));
          window = base + (base / 8) * (wd & 7);
        }
        if (window > this.maxWindow) throw new ZstdWindowError(window, this.maxWindow);
        this.head = [];
        this.state = { kind: 'block-header', checksum };
        return;
      }
      case 'block-header': {
        if (h.length < 3) return;
        const v = (h[0] as number) | ((h[1] as number) << 8) | ((h[2] as number) << 16);
        const last = (v & 1) === 1;
        const type = (v >> 1) & 3;
        const size = v >>> 3;
        this.head = [];
        if (type === 3) {
          this.state = { kind: 'unknown' };
          return;
        }
        this.skip = type === 1 ? 1 : size;
        if (last) {
          this.skip += this.state.checksum ? 4 : 0;
          this.state = { kind: 'magic' };
        }
        return;
      }
      case 'unknown':
        return;
    }
  }
}
