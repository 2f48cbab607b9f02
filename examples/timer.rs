//! The "ContextTimer" guide: how long did that take?

use std::time::Duration;

use pottery::ContextTimer;

fn main() -> Result<(), pottery::TimerError> {
    let mut timer = ContextTimer::new();
    {
        let running = timer.scope()?;
        std::thread::sleep(Duration::from_millis(25));
        println!("so far: {} ms", running.elapsed());
    }
    println!("took {} ms", timer.elapsed()?);
    Ok(())
}
