//! The "Lists" guide: RedisList with Python's indexing. Runs against $REDIS_URL.

use pottery::{Redis, RedisList};

fn main() -> Result<(), pottery::Error> {
    let redis = Redis::from_env()?;
    let squares: RedisList<i64> = RedisList::random(&redis)?;
    squares.extend([1, 4, 9, 16, 25])?;
    println!(
        "squares[0] = {:?}, squares[-1] = {:?}",
        squares.get(0)?,
        squares.get(-1)?
    );
    println!("squares[-3:] = {:?}", squares.slice(-3..)?);
    squares.insert(-1, 20)?;
    println!("after insert(-1, 20): {:?}", squares.to_vec()?);
    println!("pop(1) = {}", squares.remove(1)?);
    squares.reverse()?;
    println!("reversed: {:?}", squares.to_vec()?);
    squares.sort()?;
    println!("sorted: {:?}", squares.to_vec()?);
    squares.clear()
}
