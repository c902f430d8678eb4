# %% [markdown] tags=["slide"]
# # Functions
#
# A function gives a name to a piece of code.

# %% tags=["keep"]
def add(a, b):
    return a + b

# %% tags=["del"]
add(2, 3)

# %% [markdown] tags=["notes"]
# Speaker notes: ask who has seen `def` before.

# %% [markdown] tags=["subslide"]
# ## Default arguments

# %% tags=["del"]
def greet(name="world"):
    return f"Hello, {name}!"

greet()
