"""The diffusion refinement head's sampling schedule (DDIM), numpy only."""
