// splitWords turns a command line into its words the way a POSIX shell
// does, without running anything: words are separated by blanks; 'single
// quotes' keep everything literally; "double quotes" keep blanks and take
// \" \\ \$ \` as escapes; outside quotes a backslash escapes the next
// character. No variables, globs or operators are expanded: `;`, `|` and
// `$X` are passed on as text (write sh -c '…' to have a shell run them).
// A quote left open throws an Error that says which.
export function splitWords(line) {
  const words = [];
  let word = "";
  let inWord = false;
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line[i];
    if (c === " " || c === "\t" || c === "\n") {
      if (inWord) { words.push(word); word = ""; inWord = false; }
      i++;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`the single quote at character ${i + 1} is never closed`);
      word += line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= n) throw new Error(`the double quote at character ${i + 1} is never closed`);
        const d = line[j];
        if (d === '"') break;
        if (d === "\\" && j + 1 < n && '"\\$`\n'.includes(line[j + 1])) {
          if (line[j + 1] !== "\n") word += line[j + 1];
          j += 2;
          continue;
        }
        word += d;
        j++;
      }
      i = j + 1;
    } else if (c === "\\") {
      if (i + 1 < n) {
        if (line[i + 1] !== "\n") word += line[i + 1];
        i += 2;
      } else {
        throw new Error("the line ends with a backslash that escapes nothing");
      }
    } else {
      word += c;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
