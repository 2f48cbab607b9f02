//! Python's float `repr`, from Rust's shortest round-trip digits.

use std::fmt::Write;

/// Appends `x` as Python's `repr(float)` (and so `json.dumps`) writes it.
pub(crate) fn write_f64(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        // `{:e}` gives the shortest digits that round-trip, as Python's repr does.
        let mut sci = String::with_capacity(32);
        let _ = write!(sci, "{x:e}");
        write_from_scientific(out, &sci);
    }
}

/// Appends an `f32` with the shortest digits that read back as the same `f32`.
pub(crate) fn write_f32(out: &mut String, x: f32) {
    if x.is_nan() || x.is_infinite() {
        write_f64(out, f64::from(x));
    } else {
        let mut sci = String::with_capacity(24);
        let _ = write!(sci, "{x:e}");
        write_from_scientific(out, &sci);
    }
}

/// `sci` is Rust's `{:e}` output for a finite number, such as `-1.2345e-5`, `1e16` or `0e0`.
fn write_from_scientific(out: &mut String, sci: &str) {
    let (negative, body) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci),
    };
    let (mantissa, exponent) = body.split_once('e').unwrap_or((body, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push('-');
    }
    if digits == "0" {
        out.push_str("0.0");
        return;
    }
    // Value = 0.DIGITS × 10^decpt, as in CPython's format_float_short.
    let decpt = exponent + 1;
    let n = digits.len() as i32;
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt >= n {
            out.push_str(&digits);
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
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (x, want) in cases {
            assert_eq!(repr(*x), *want, "repr of {x:?}");
        }
    }
}
