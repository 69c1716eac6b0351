"""What is said in a recording: transcribers behind one small interface."""
