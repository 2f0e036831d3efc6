"""The computer: Unicorn, boards, devices, exact instruction counting."""
