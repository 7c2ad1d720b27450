// Package npi checks National Provider Identifiers.
package npi

// prefix is the card-issuer prefix that CMS puts before the first nine
// digits of every NPI when it computes the check digit.
const prefix = "80840"

// Valid reports whether s is an NPI: ten ASCII digits whose last is the Luhn
// check digit of "80840" followed by the first nine. It agrees with the
// database's npi_is_valid, which a test checks.
func Valid(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return CheckDigit(s[:9]) == s[9]-'0'
}

// CheckDigit returns the NPI check digit of the first nine digits.
func CheckDigit(nine string) byte {
	digits := prefix + nine
	sum := 0
	// From the right, every first digit is doubled, as the check digit
	// that follows would occupy the undoubled position.
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte((10 - sum%10) % 10)
}
