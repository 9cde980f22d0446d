/**
 * Reading a /proc file whole, asynchronously. Node 18's fs.promises.readFile
 * (Debian 12's nodejs 18.20) stops after the first read() of a file whose
 * size is reported as 0, and a multi-record seq_file (mountinfo, maps, one
 * line per mount or mapping) hands out at most a page per read(): it returned
 * 4002 of /proc/self/mountinfo's 4140 bytes in the 6.1 guest, and 3980 of
 * /proc/self/maps's 7522 here (Node 20 reads them whole). This reads until
 * end of file.
 */
import { promises as fs } from 'node:fs';

const CHUNK = 65536;

export async function readProcText(file: string): Promise<string> {
  const handle = await fs.open(file, 'r');
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const buffer = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
      if (bytesRead === 0) break;
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await handle.close();
  }
}
