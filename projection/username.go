package projection

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// LowerUsername lower-cases a username the way Python's str.lower() does, which
// is how the LMS compares usernames (request.user.username.lower() ==
// username.lower()). It differs from strings.ToLower in two places Python
// follows Unicode's SpecialCasing: 'İ' (U+0130) becomes "i̇" (i + U+0307), and a
// capital sigma at the end of a word becomes 'ς' (final sigma).
func LowerUsername(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch r {
		case 'İ':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(s, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma implements Unicode's Final_Sigma condition as CPython does: the
// sigma at byte i is preceded by a cased letter (skipping case-ignorable
// characters) and not followed by one.
func finalSigma(s string, i int) bool {
	before := false
	for j := i; j > 0; {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if caseIgnorable(r) {
			continue
		}
		before = cased(r)
		break
	}
	if !before {
		return false
	}
	for j := i + len("Σ"); j < len(s); {
		r, n := utf8.DecodeRuneInString(s[j:])
		j += n
		if caseIgnorable(r) {
			continue
		}
		return !cased(r)
	}
	return true
}

func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

func caseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) ||
		r == '\'' || r == '.' || r == ':' || r == '^' || r == '`' || r == '\u00B7' || r == '\u2019'
}

// ValidUsername reports whether s matches the LMS's USERNAME_PATTERN,
// [\w .@_+-]+, where \w is Python's Unicode word character: a letter, a
// number or the underscore.
func ValidUsername(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case unicode.IsLetter(r), unicode.IsNumber(r):
		case r == '_', r == ' ', r == '.', r == '@', r == '+', r == '-':
		default:
			return false
		}
	}
	return true
}
