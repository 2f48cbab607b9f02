//! Python's float `repr`, from the shortest round-trip digits.
//!
//! The digits come from Ryū, which, like CPython's dtoa, picks the shortest digit string that
//! reads back as the same float and, between two equally short candidates, the one nearest the
//! exact value with ties to even. (Rust's `{:e}` breaks such ties upwards:
//! `997540573077655.25` exactly is `...655.3` there and `...655.2` in Python.)

use std::fmt::Write;

/// Appends `x` as Python's `repr(float)` (and so `json.dumps`) writes it.
pub(crate) fn write_f64(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        write_shortest(out, ryu::Buffer::new().format_finite(x));
    }
}

/// Appends an `f32` with the shortest digits that read back as the same `f32`.
pub(crate) fn write_f32(out: &mut String, x: f32) {
    if x.is_nan() || x.is_infinite() {
        write_f64(out, f64::from(x));
    } else {
        write_shortest(out, ryu::Buffer::new().format_finite(x));
    }
}

/// `text` is a finite number in any plain decimal form (`-1.2345e-5`, `1e16`, `0.001`,
/// `123.0`); it is rewritten in Python's repr layout.
fn write_shortest(out: &mut String, text: &str) {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = body.split_once(['e', 'E']).unwrap_or((body, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The number is 0.DIGITS × 10^decpt.
    let mut decpt = int_part.len() as i32 + exponent;
    let all = format!("{int_part}{frac_part}");
    let trimmed = all.trim_start_matches('0');
    decpt -= (all.len() - trimmed.len()) as i32;
    let digits = trimmed.trim_end_matches('0');
    if negative {
        out.push('-');
    }
    if digits.is_empty() {
        out.push_str("0.0");
        return;
    }
    let n = digits.len() as i32;
    // Fixed notation when -4 < decpt <= 16, as CPython's format_float_short for repr.
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(digits);
        } else if decpt >= n {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
}

#[cfg(test)]
mod tests {
    fn repr(x: f64) -> String {
        let mut s = String::new();
        super::write_f64(&mut s, x);
        s
    }

    #[test]
    fn python_repr_vectors() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (12345678.9, "12345678.9"),
            (1e22, "1e+22"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (123.456e-10, "1.23456e-08"),
            (-2.5e-7, "-2.5e-07"),
            (100.0, "100.0"),
            (997540573077655.2, "997540573077655.2"),
            (0.001, "0.001"),
            (1e-7, "1e-07"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (x, want) in cases {
            assert_eq!(repr(*x), *want, "repr of {x:?}");
        }
    }
}
