/** `1 session`, `0 sessions`, `2 sessions`: for nouns whose plural just adds an s. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}
