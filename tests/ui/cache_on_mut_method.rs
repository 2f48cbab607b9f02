use pottery::redis_cache;

struct Calculator;

impl Calculator {
    #[redis_cache(key = "squares")]
    fn square(&mut self, n: u64) -> u64 {
        n * n
    }
}

fn main() {}
