package schema

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxNameLength is PostgreSQL's identifier limit (NAMEDATALEN-1). Longer names are
// truncated silently by the server, so two long tenant names could share one schema.
const MaxNameLength = 63

// ExtensionsSchema holds the extensions shared by every tenant. It is reserved.
const ExtensionsSchema = "extensions"

// ErrInvalidName is wrapped by every validation failure; the rule sentinels below say
// which rule failed. Test with errors.Is.
var ErrInvalidName = errors.New("invalid schema name")

// Rule sentinels: each validation error wraps ErrInvalidName and exactly one of these.
var (
	ErrEmpty           = errors.New("name is empty")
	ErrTooLong         = fmt.Errorf("name is longer than %d bytes", MaxNameLength)
	ErrTrailingNewline = errors.New("name ends with a newline")
	ErrCharacters      = errors.New("name may only contain a-z, 0-9, '_' and '-'")
	ErrLeadingDigit    = errors.New("name starts with a digit")
	ErrPgPrefix        = errors.New("name starts with pg_ (reserved by PostgreSQL)")
	ErrDoubleDash      = errors.New("name contains '--' (an SQL comment)")
	ErrReserved        = errors.New("name is reserved")
)

// builtinReserved are the schema names no tenant may take, whatever the application says.
var builtinReserved = [...]string{"public", "information_schema", ExtensionsSchema, RegistrySchema}

// NameError reports a name that failed validation and the rule it broke.
type NameError struct {
	Name string // the rejected name, for logs; never echo it to HTTP clients
	Rule error  // one of the rule sentinels
}

// Error names the rejected name and the rule it broke.
func (e *NameError) Error() string {
	return fmt.Sprintf("invalid schema name %q: %v", e.Name, e.Rule)
}

// Unwrap makes errors.Is match both ErrInvalidName and the rule sentinel.
func (e *NameError) Unwrap() []error { return []error{ErrInvalidName, e.Rule} }

// Validate returns nil for a name a tenant schema may have: it matches
// ^[a-z0-9_-]+$, is at most 63 bytes, does not start with a digit or "pg_", contains
// no "--", does not end with a newline, and is reserved neither by this package
// ("public", "information_schema", "extensions", "tenant_registry") nor by the
// caller (reserved: the application's own schema names). Otherwise it returns a
// *NameError wrapping ErrInvalidName and the broken rule. It builds no SQL and needs
// no database; it is the only function that decides whether a name is valid.
func Validate(name string, reserved ...string) error {
	if rule := check(name, reserved); rule != nil {
		return &NameError{Name: name, Rule: rule}
	}
	return nil
}

// check returns the first rule name breaks, or nil.
func check(name string, reserved []string) error {
	switch {
	case name == "":
		return ErrEmpty
	case strings.HasSuffix(name, "\n"):
		// Checked apart from the character rule so the message is precise: a regexp
		// with `$` (as in Python's re) would accept "acme\n".
		return ErrTrailingNewline
	case len(name) > MaxNameLength:
		return ErrTooLong
	case !allowedChars(name):
		return ErrCharacters
	case name[0] >= '0' && name[0] <= '9':
		return ErrLeadingDigit
	case strings.HasPrefix(name, "pg_"):
		return ErrPgPrefix
	case strings.Contains(name, "--"):
		return ErrDoubleDash
	case slices.Contains(builtinReserved[:], name), slices.Contains(reserved, name):
		return ErrReserved
	}
	return nil
}

func allowedChars(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
