/**
 * A root file system on XFS made from a directory tree without mounting anything: `mkfs.xfs -p <protofile>` (the
 * prototype file format of mkfs.xfs(8)) populates the new file system with the files the protofile lists. This
 * writes that list for a tree: every directory, regular file (copied from its path), symbolic link and device node,
 * with its owner and permissions, set-user-ID and set-group-ID bits. Hard links become separate copies, and a sticky
 * bit cannot be expressed (systemd-tmpfiles sets /tmp's and /var/tmp's at boot); nothing a test guest depends on.
 */
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';

export function xfsProtofile(root: string): string {
  const lines = ['/dev/null', '0 0', `${mode(lstatSync(root))} 0 0`];
  walk(root, 1, lines);
  lines.push('$', '');
  return lines.join('\n');
}

function walk(dir: string, depth: number, lines: string[]): void {
  const indent = ' '.repeat(depth);
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (/\s/.test(name)) throw new Error(`mkfs.xfs protofiles cannot name ${full}: whitespace in a file name`);
    const st = lstatSync(full);
    const head = `${indent}${name} ${mode(st)} ${st.uid} ${st.gid}`;
    if (st.isDirectory()) {
      lines.push(head);
      walk(full, depth + 1, lines);
      lines.push(`${indent}$`);
    } else if (st.isFile()) lines.push(`${head} ${full}`);
    else if (st.isSymbolicLink()) lines.push(`${head} ${readlinkSync(full)}`);
    else if (st.isBlockDevice() || st.isCharacterDevice()) lines.push(`${head} ${Math.floor(st.rdev / 256) & 0xfff} ${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`);
    else if (st.isFIFO()) lines.push(head);
    // Sockets are made by the programs that listen on them; a file system image holds none.
  }
}

function mode(st: Stats): string {
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isBlockDevice() ? 'b' : st.isCharacterDevice() ? 'c' : st.isFIFO() ? 'p' : '-';
  return `${type}${st.mode & 0o4000 ? 'u' : '-'}${st.mode & 0o2000 ? 'g' : '-'}${(st.mode & 0o777).toString(8).padStart(3, '0')}`;
}
